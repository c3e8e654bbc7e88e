"""Pure parsers of DNS record text: strings in, typed trees out."""
