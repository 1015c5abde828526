"""Hyper-parameter tuning with Optuna (`srunit tune`): studies, their trials and what they train and score on."""
