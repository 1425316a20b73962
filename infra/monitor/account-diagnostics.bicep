// A diagnostic setting on one account sending its RequestResponse logs to the watched workspace: without it the
// account's 401/403s never reach AzureDiagnostics, and the service has nothing to read.
param accountName string
param workspaceResourceId string
param settingName string = 'aoai-auth-triage'

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: accountName
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  scope: account
  name: settingName
  properties: {
    workspaceId: workspaceResourceId
    logs: [
      {
        category: 'RequestResponse'
        enabled: true
      }
    ]
  }
}
