"""Training and tuning: augmentation, the fit loop, precise BatchNorm statistics, train_model and the Optuna study."""
