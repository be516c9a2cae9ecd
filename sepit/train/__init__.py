"""Training recipes for SEPIT's three stages on one engine (the HF Trainer: DDP/FSDP/DeepSpeed come from it)."""
