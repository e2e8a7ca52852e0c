"""Training the tiny models on CPU (issue 12), so the offline default runs trained UNets
and a trained VAE instead of random ones.

* :mod:`.data`: the training images (CC0 / public-domain scikit-image photographs and
  procedural landscapes, none of them an evaluation image), seeded random crops of them,
  and seeded random inpainting masks (discs, boxes, brush strokes)."""
