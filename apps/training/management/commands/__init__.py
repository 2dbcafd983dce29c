"""`manage.py train_model`."""
