"""privcam's end-to-end layer: the camera and captioner trained together, and every job built on
that (training CLI, checkpoints, evaluation, demo, privacy study, trade-off).

It sits on top of the three libraries and imports them one way (docs/design.md, "Layers"):
``optics`` (lens, camera) → ``captioning`` (data, vocabulary, encoder, decoder, metrics) →
``attacks`` (deconvolution and learned attackers) → ``endtoend``. None of them imports this
package; ``tests/test_layers.py`` checks that.
"""
