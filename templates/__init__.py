"""Template files shipped with deltaprompts: question phrasings, document layouts, vocabularies."""
