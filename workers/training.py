"""Training tasks: model training on the training queue and the 6-hourly retraining job."""
