"""Spoken digits: WAV audio → spectrogram → CNN (issue 13's speech half).

- ``audio``: WAV files read with SciPy, mono, resampled to 8 kHz (``read_wav``);
- ``spectrogram``: log-STFT, log-mel, MFCC as (F, T) images (``FeatureSettings``, ``features``);
- ``augment``: seeded spectrogram augmentation (shift, tempo, pitch, noise, SpecAugment masks);
- ``models``: ``freq`` (filters along frequency, time left to a later layer) and ``2d``
  (time × frequency);
- ``fsdd``: the Free Spoken Digit Dataset and its standard and speaker-held-out splits;
- ``train``: runs in run folders with checkpoints and resume; ``model_file``: the model format
  with its feature settings, and the shipped model; ``inference``: predict and show;
- ``commands``: ``cnnlab speech train|predict|show``.

The modules are imported where used (SciPy's signal module and the training stack load slowly).
"""
