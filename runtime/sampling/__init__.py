"""One loaded model turning requests into images in memory: noise, labels, guidance, latent paths."""
