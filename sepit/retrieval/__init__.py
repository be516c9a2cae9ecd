"""Evidence-grounded answers: a reference index of annotated proteins, homology search (MMseqs2 or pyopal),
the evidence shown to the model and the check of its citations."""
