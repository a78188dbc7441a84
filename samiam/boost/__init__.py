"""The semantic booster: geometric filter, texture crops, encoders, clustering and merge."""
