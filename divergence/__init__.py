"""Answer-distribution divergence between a teacher and a student model."""
