"""Face-swap networks (SAEHD-class autoencoders, discriminators) and their losses, shared by training and export."""
