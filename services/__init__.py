"""Sluice's behaviour: providers, the streaming core, storage and the chat service."""
