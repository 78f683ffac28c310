"""Training one architecture and reporting its reward: the trainer, its config, schedule, runtime and trial file."""
