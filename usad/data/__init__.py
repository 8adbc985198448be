"""Audio corpora for distillation and the labelled task suite."""
