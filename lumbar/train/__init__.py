"""Training: datasets in the layouts users have, batched augmentation, and a resumable loop."""
