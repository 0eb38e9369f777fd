"""The engine at the bottom: Gemma's module tree (`sites`), hooks, SAEs and their files, the corpus,
fingerprints, and `effects` (a feature's downstream maths). Imports nothing above it (docs/ARCHITECTURE.md).
"""
