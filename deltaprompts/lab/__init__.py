"""The toy lab: build and ship a tiny trained teacher-student VLM pair; distillation."""
