"""Backbones that keras.applications does not have, built like keras.applications models."""
