"""Question phrasings (DESIGN section 3.2): caption requests, one open-ended family per annotation type,
yes/no templates (``{value}`` is the annotation asked about) and multiple-choice stems.

Questions never contain the protein placeholder; the processor adds it.
"""

from __future__ import annotations

CAPTION = (
    "Describe this protein.",
    "Give a functional description of this protein.",
    "What can you tell me about this protein?",
    "Summarise the function and properties of this protein.",
)

OPEN: dict[str, tuple[str, ...]] = {
    "function": ("What is the function of this protein?", "What does this protein do?",
                 "Describe the biological role of this protein."),
    "catalytic_activity": ("What reaction does this protein catalyse?", "What is the catalytic activity of"
                           " this protein?", "Which chemical reaction is catalysed by this enzyme?"),
    "cofactor": ("What cofactor does this protein need?", "Which cofactors are required by this protein?",
                 "What cofactor binds to this protein for its activity?"),
    "subunit": ("What is the subunit structure of this protein?", "What does this protein interact with?",
                "Describe the quaternary structure and interactions of this protein."),
    "subcellular_location": ("Where is this protein located in the cell?", "What is the subcellular location"
                             " of this protein?", "In which cellular compartment is this protein found?"),
    "tissue_specificity": ("In which tissues is this protein expressed?", "What is the tissue specificity of"
                           " this protein?", "Where in the organism is this protein expressed?"),
    "induction": ("What induces the expression of this protein?", "How is the expression of this protein"
                  " regulated?", "Under which conditions is this protein induced?"),
    "domain": ("What can you say about the domains of this protein?", "Describe the domain organisation of"
               " this protein.", "Which domains does this protein have and what do they do?"),
    "ptm": ("What post-translational modifications does this protein undergo?", "How is this protein"
            " modified after translation?", "Describe the post-translational modifications of this protein."),
    "pathway": ("Which metabolic pathway is this protein part of?", "In what pathway does this protein take"
                " part?", "What pathway does this protein belong to?"),
    "family": ("Which protein family does this protein belong to?", "What family is this protein a member"
               " of?", "To which family or superfamily does this protein belong?"),
    "disease": ("Is this protein involved in any disease?", "What diseases are associated with this"
                " protein?", "Which disease is caused by defects in this protein?"),
    "activity_regulation": ("How is the activity of this protein regulated?", "What regulates the activity"
                            " of this protein?", "What activates or inhibits this protein?"),
    "biophysicochemical": ("What are the biophysicochemical properties of this protein?", "What are the"
                           " kinetic parameters and optimal conditions of this protein?",
                           "Describe the kinetic and physicochemical properties of this protein."),
    "ec": ("What is the EC number of this protein?", "Which EC number is assigned to this enzyme?",
           "What enzyme classification does this protein have?"),
    "go_mf": ("What molecular functions does this protein have?", "List the GO molecular function terms of"
              " this protein.", "Which molecular activities does this protein carry out?"),
    "go_bp": ("Which biological processes is this protein involved in?", "List the GO biological process"
              " terms of this protein.", "In which biological processes does this protein take part?"),
    "go_cc": ("In which cellular components is this protein found?", "List the GO cellular component terms"
              " of this protein.", "Which cellular structures is this protein part of?"),
    "keywords": ("Which UniProt keywords describe this protein?", "Give keywords that describe this protein.",
                 "What keywords are associated with this protein?"),
    "domain_feature": ("Which domains does this protein contain, and where?", "List the domains of this"
                       " protein with their positions.", "Where are the domains of this protein located?"),
    "motif": ("Which sequence motifs does this protein contain?", "List the short motifs of this protein.",
              "Does this protein have any notable motifs, and where?"),
    "active_site": ("Which residues form the active site of this protein?", "Where is the active site of"
                    " this protein?", "List the active-site residues of this protein."),
    "binding_site": ("Which residues of this protein bind ligands or metals?", "Where are the binding sites"
                     " of this protein?", "List the binding sites of this protein."),
    "transmembrane": ("Does this protein have transmembrane regions, and where?", "Where are the"
                      " transmembrane segments of this protein?", "Describe the membrane topology of this"
                      " protein."),
    "signal_peptide": ("Does this protein have a signal peptide?", "Where is the signal peptide of this"
                       " protein?", "Is this protein synthesised with a signal sequence?"),
}

YES_NO: dict[str, tuple[str, ...]] = {
    "subcellular_location": ("Is this protein located in the {value}?", "Is this protein found in the"
                             " following compartment: {value}?"),
    "family": ("Does this protein belong to the {value}?", "Is this protein a member of the {value}?"),
    "ec": ("Does this protein catalyse the reaction of EC {value}?", "Is EC {value} assigned to this"
           " protein?"),
    "cofactor": ("Does this protein use {value} as a cofactor?", "Is {value} a cofactor of this protein?"),
    "go_mf": ("Does this protein have the molecular function '{value}'?", "Is '{value}' a molecular function"
              " of this protein?"),
    "go_bp": ("Is this protein involved in '{value}'?", "Does this protein take part in the biological"
              " process '{value}'?"),
    "go_cc": ("Is this protein found in '{value}'?", "Is '{value}' a cellular component of this protein?"),
    "keywords": ("Is this protein annotated with the keyword '{value}'?", "Does the keyword '{value}'"
                 " describe this protein?"),
    "domain_feature": ("Does this protein contain a {value} domain?", "Is there a {value} domain in this"
                       " protein?"),
}

CHOICE: dict[str, tuple[str, ...]] = {
    "subcellular_location": ("Where is this protein located?", "Which of these is a subcellular location"
                             " of this protein?"),
    "ec_class": ("Which enzyme class does this protein belong to?", "What class of reaction does this"
                 " enzyme catalyse?"),
    "family": ("Which protein family does this protein belong to?", "Which of these families includes this"
               " protein?"),
    "go_mf": ("Which of these molecular functions does this protein have?",),
    "go_bp": ("Which of these biological processes is this protein involved in?",),
    "go_cc": ("Which of these cellular components is this protein found in?",),
}

EC_CLASSES = {
    "1": "oxidoreductase", "2": "transferase", "3": "hydrolase", "4": "lyase", "5": "isomerase",
    "6": "ligase", "7": "translocase",
}
