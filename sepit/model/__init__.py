"""SEPIT model components (DESIGN section 2). Never imports from train/ or serve/."""
