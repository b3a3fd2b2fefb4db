"""Geography for the cockpit: Quzhou outlines, synthetic lower levels, point-to-grid lookup."""
