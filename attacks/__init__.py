"""privcam attacks."""
