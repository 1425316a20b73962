// The Event Grid system topic of this subscription's ARM events (Microsoft.Resources.Subscriptions): role
// assignment writes and deletes arrive as ResourceWriteSuccess / ResourceDeleteSuccess. Its system-assigned
// identity writes dead letters to the service's storage.
param name string
param tags object = {}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: 'global'
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

output id string = topic.id
output principalId string = topic.identity.principalId
