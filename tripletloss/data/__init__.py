"""Face datasets: folder scanning, decoding, augmentation, batch samplers and the built-in synthetic faces."""
