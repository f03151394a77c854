"""Data shipped with surrogate-xai, or generated (imported as ``surrogate_xai.datasets``)."""
