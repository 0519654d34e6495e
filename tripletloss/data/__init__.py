"""Face datasets: the identity-folder layout, decoding, augmentation, batch samplers, LFW pairs files and the
built-in synthetic faces."""
