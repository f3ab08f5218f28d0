"""The model folders shipped with vae-gen, one subfolder each (see model_store)."""
