"""HTTP adapters beside the Streamlit app (decision 0024): parse requests, call services, format answers."""
