"""Training dynamics of deep models: mutual-information (information-bottleneck) signatures per
group and the dynamics-based stealthiness score. torch is imported lazily."""
