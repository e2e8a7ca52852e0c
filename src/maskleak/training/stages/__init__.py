"""The steps of ``snakemake train_tiny_models``, one module per rule (so each rule's code
hash follows only the code it runs): each reads the ``training`` config section
(validated and defaulted by the workflow's schema), makes one part of the trained layout
(``maskleak.trained_models``) or its quality report, and records what made it."""
