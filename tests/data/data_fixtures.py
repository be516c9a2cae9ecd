"""Constants of the hand-written fixture files (unique module name: importable from the data tests)."""

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
SEQ1 = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"  # Q00001 in mini.dat; chain A of 1xyz.pdb covers 1-20 (10 missing)
SEQ2 = "MSTNPKPQRKTKRNTNRRPQDVKFPGGGQIVGGVYLLPRRGPRLGVRATRK"  # Q00002; AF-Q00002-F1-model_v4.pdb
