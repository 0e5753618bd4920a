"""The CRM API simulator: a HubSpot-style CRM v3 API that the Customer 360 flow extracts from."""
