// The service's user-assigned managed identity: every role below is granted to it, and the Function App, its
// storage connection, Key Vault references and Application Insights all authenticate with it.
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
