"""chrombench: a benchmark suite for predicting gene expression from histone modifications."""

__version__ = "0.1.0"

# Column order of the DeepChrome/AttentiveChrome archive format; every array in chrombench uses it.
MARKS = ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3")
N_BINS = 100
N_MARKS = len(MARKS)
