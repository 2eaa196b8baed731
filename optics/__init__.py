"""privcam optics."""
