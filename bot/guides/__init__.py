"""The shipped registration guides (YAML data read by bot.domain.guides through importlib.resources)."""
