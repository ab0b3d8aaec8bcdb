"""Names written once: backends, schedules, likelihoods, networks, optimizers, metric keys.

Keras-free, so that the command line can offer them as choices before the backend
is selected. Each library registry is keyed by these names.
"""

BACKENDS = ("tensorflow", "jax", "torch")

# Which trainable variables one gradient step updates.
ENCODER = "encoder"
DECODER = "decoder"
JOINT = "joint"
PARTS = (ENCODER, DECODER, JOINT)
DISCRIMINATOR = "discriminator"  # a VAE-GAN's third part

# Models the command line builds (`keras-vae train --model`).
VAE = "vae"
VAE_GAN = "vae-gan"
MODELS = (VAE, VAE_GAN)

# Names of the logged metrics (history keys; callbacks and the CLI use them).
LOSS = "loss"
RECONSTRUCTION_LOSS = "reconstruction_loss"
KL_LOSS = "kl_loss"
BETA = "beta"
AGGRESSIVE = "aggressive"
ENCODER_STEPS = "encoder_steps"
ACTIVE_UNITS = "active_units"
MUTUAL_INFO = "mutual_info"  # on a probe set (LatentDynamics)
VAL_MUTUAL_INFO = "val_mutual_info"  # on validation data (the aggressive-training switch)
VAL_LOSS = "val_loss"  # what the training recipe's decay, early stopping and best model watch
LEARNING_RATE = "learning_rate"  # the rate an epoch trained at (DecayOnPlateau)
LR_DECAYS = "lr_decays"  # the learning-rate decays so far (DecayOnPlateau)

# CollapseMonitor's remedies: switch on aggressive training, or raise free bits.
REMEDY_AGGRESSIVE = AGGRESSIVE
REMEDY_FREE_BITS = "free-bits"
COLLAPSE_REMEDIES = (REMEDY_AGGRESSIVE, REMEDY_FREE_BITS)

# β (KL weight) schedules and learning-rate schedules (`keras_vae.schedules`).
BETA_CONSTANT = "constant"
BETA_LINEAR = "linear"
BETA_COSINE = "cosine"
BETA_CYCLICAL = "cyclical"
BETA_SCHEDULES = (BETA_CONSTANT, BETA_LINEAR, BETA_COSINE, BETA_CYCLICAL)
LEARNING_RATE_CONSTANT = "constant"
LEARNING_RATE_COSINE = "cosine"
LEARNING_RATE_TRIANGULAR = "triangular"
LEARNING_RATE_ONE_CYCLE = "one-cycle"
LEARNING_RATE_SCHEDULES = (
    LEARNING_RATE_CONSTANT,
    LEARNING_RATE_COSINE,
    LEARNING_RATE_TRIANGULAR,
    LEARNING_RATE_ONE_CYCLE,
)

# Observation models p(x|z) (`keras_vae.likelihoods`).
BERNOULLI = "bernoulli"
GAUSSIAN = "gaussian"
POISSON = "poisson"
NB = "nb"
ZINB = "zinb"
CATEGORICAL = "categorical"
COUNT_LIKELIHOODS = (POISSON, NB, ZINB)
LIKELIHOODS = (BERNOULLI, GAUSSIAN, *COUNT_LIKELIHOODS, CATEGORICAL)

# Keras dtype policies of the networks (`keras-vae train --dtype-policy`); the objective stays in float32.
FLOAT32 = "float32"
MIXED_BFLOAT16 = "mixed_bfloat16"
DTYPE_POLICIES = (FLOAT32, MIXED_BFLOAT16)

# Encoder/decoder builders (`keras_vae.networks`); the autoregressive ones need an AutoregressiveVAE.
MLP = "mlp"
CONV = "conv"
PIXELCNN = "pixelcnn"
LSTM = "lstm"
AUTOREGRESSIVE_ARCHITECTURES = (PIXELCNN, LSTM)
ARCHITECTURES = (MLP, CONV, *AUTOREGRESSIVE_ARCHITECTURES)

# Optimizers the command line builds: name -> class name (in keras.optimizers, else keras_vae.optimizers).
ADAM = "adam"
ADAMW = "adamw"
RADAM = "radam"
SGD = "sgd"
OPTIMIZERS = {ADAM: "Adam", ADAMW: "AdamW", RADAM: "RAdam", SGD: "SGD"}
# Those with Adam's moment estimates (β₁, β₂, ε); SGD alone takes momentum and Nesterov.
ADAPTIVE_OPTIMIZERS = (ADAM, ADAMW, RADAM)
# Batch-size scaling rules of the learning rate (`keras_vae.optimizers.batch_size_scale`).
LR_SCALINGS = ("linear", "sqrt")

# How latent codes of more than two dimensions are drawn in the plane (`keras_vae.plotting.project_2d`).
PCA = "pca"
UMAP = "umap"
PROJECTIONS = (PCA, UMAP)

# How pixels become 0/1: resampled every epoch, or drawn once.
BINARIZATIONS = ("dynamic", "fixed")

# Reserved token ids of the text pipeline and the LSTM networks.
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD, UNK, BOS, EOS = range(len(SPECIAL_TOKENS))
