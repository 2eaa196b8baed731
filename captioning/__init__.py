"""privcam captioning."""
