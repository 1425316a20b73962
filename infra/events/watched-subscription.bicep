// One watched subscription: Reader for the identity (role assignments, role definitions and account settings for
// the evidence), and an Event Grid system topic for its ARM events, in a resource group of that subscription (the
// deployment's own group for its own subscription). The postdeploy hook subscribes the `events` function to it.
targetScope = 'subscription'

param principalId string
param resourceGroupName string
param createResourceGroup bool
param location string
param tags object = {}
param topicName string

var roles = loadJsonContent('../rbac/roles.json')

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roles.reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aoai-auth-triage: read role assignments and account settings'
  }
}

resource eventsGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = if (createResourceGroup) {
  name: resourceGroupName
  location: location
  tags: tags
}

module topic 'system-topic.bicep' = {
  name: 'triage-topic-${uniqueString(subscription().id, topicName)}'
  scope: resourceGroup(resourceGroupName)
  dependsOn: [
    eventsGroup
  ]
  params: {
    name: topicName
    tags: tags
  }
}

output topicId string = topic.outputs.id
output topicPrincipalId string = topic.outputs.principalId
