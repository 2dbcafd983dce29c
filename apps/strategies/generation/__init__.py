"""What strategy generation asks for and accepts: the answer's schema and prompt (``schema``) and the
offline rule templates (``templates``, data in ``templates.json``). The run service that asks,
judges and stores is ``apps.strategies.services.generation``."""
