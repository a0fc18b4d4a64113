"""Ingest: listing the input's image files and labelling each by its folder (`listing`), and
the quickstart's generated demo images (`demo_data`).
"""
