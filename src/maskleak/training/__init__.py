"""Training the tiny models on CPU (issue 12), so the offline default runs trained UNets
and a trained VAE instead of random ones.

* :mod:`.data`: the training images (CC0 / public-domain scikit-image photographs and
  procedural landscapes, none of them an evaluation image), seeded random crops of them,
  and seeded random inpainting masks (discs, boxes, brush strokes).
* :mod:`.vae`: the tiny ``AutoencoderKL``, started as the exact 8x8 block mean and
  trained on reconstruction + KL; the block-mean baseline and PSNR.
* :mod:`.unet`: the 9- and 4-channel ``UNet2DConditionModel``s, trained as latent
  diffusion with SD's objective on the pipeline's own latent preparation.
* :mod:`.folders`: a trained component saved as a diffusers folder with its record.
* :mod:`.quality`: any inpainting folder measured at strength 1 against the mean-colour
  fill, an untrained model, its VAE floor and BrushBench's range.
* :mod:`.stages`: one module per rule of ``snakemake train_tiny_models``."""
