"""Every fixed seed and evaluation constant of vae-gen, in one place.

Scores, parity checks, golden checks and calibration draw their random
numbers from these seeds, so every figure they produce can be rerun exactly.
Each seed differs from the others where the draws must not overlap
(calibration must never see the latents it is judged on). The runtime's own
generation seeds are the user's: see latents.py.
"""

from __future__ import annotations

# -- scoring a model (vae_gen.train.evaluate, vae_gen.train.fit) ------------------------

#: Seed of every posterior sample drawn to score a model: the test -ELBO and the IW NLL.
EVAL_SEED = 0
#: Posterior samples per image of the importance-weighted NLL bound.
IW_SAMPLES = 50
#: Test images (the first ones) of the importance-weighted NLL bound.
IW_IMAGES = 1000
#: Images per forward pass when scoring a whole test set.
EVAL_BATCH = 500

# -- exporting (vae_gen.export) -----------------------------------------------------------

#: Max |keras - onnxruntime| allowed on any output value of the parity gate.
PARITY_TOLERANCE = 1e-5
#: Batch sizes at which the parity gate runs each graph.
PARITY_BATCH_SIZES = (1, 7, 256)
#: The parity gate also checks latents uniformly over [-FAR_LATENT, FAR_LATENT], corners included.
FAR_LATENT = 5.0
#: Seed of the parity gate's latents (and, plus one, of its images).
PARITY_SEED = 0
#: Seed of the random golden latents written into model.json; the others are fixed points.
GOLDEN_SEED = 1234
#: Rows of golden latents (and noise): enough that the few pixels an int8 model moves across CPUs show up.
GOLDEN_ROWS = 16

# -- quantizing (vae_gen.export.quantize) -------------------------------------------------

#: N(0, I) latents that calibrate the int8 decoder's ranges.
CALIBRATION_LATENTS = 1024
CALIBRATION_SEED = 12345
#: Latents of the comparison of an int8 decoder with the float32 one it came from.
COMPARISON_LATENTS = 1000
COMPARISON_SEED = 0

# -- report pictures (vae_gen.train.report) -----------------------------------------------

#: Seed of the report's samples and of its choice of test images.
REPORT_SEED = 0

# -- the project's Fashion-MNIST classifier (vae_gen.train.classifier) --------------------

#: Seed of the classifier's initial weights and batch order: every classifier (real or generated
#: training images) starts from the same draws, so their accuracies differ by their training images alone.
CLASSIFIER_SEED = 20190
#: Training epochs and batch size of the classifier.
CLASSIFIER_EPOCHS = 5
CLASSIFIER_BATCH = 128

# -- exploring a model (vae_gen.sampling.latent_activity: the web page's sliders) -----------------

#: Decoded N(0, I) samples whose re-encoding measures how much the decoder uses each latent dimension.
ACTIVITY_SAMPLES = 512
#: Seed of those samples (the runtime's own noise stream, image indices 0 .. ACTIVITY_SAMPLES - 1).
ACTIVITY_SEED = 0

# -- learned priors (vae_gen.export.fit_prior) ---------------------------------------------

#: Seed of the posterior samples a prior is fitted on, of the mixture's initialization and of the second stage.
PRIOR_SEED = 0
#: The second-stage VAE (Dai & Wipf 2019): hidden layers of its encoder and decoder, epochs, batch size.
TWO_STAGE_HIDDEN = (512, 512)
TWO_STAGE_EPOCHS = 40
TWO_STAGE_BATCH = 256
#: The second stage's observation variance gamma at the start of training (it is learned).
TWO_STAGE_GAMMA0 = 0.01
