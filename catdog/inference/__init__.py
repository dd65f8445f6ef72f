"""Using a trained run: predictions, test-set evaluation, Grad-CAM explanations, exports."""
