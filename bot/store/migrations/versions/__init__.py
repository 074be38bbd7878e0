"""Revision scripts, one per schema change, applied in order by bot.store.migrate."""
