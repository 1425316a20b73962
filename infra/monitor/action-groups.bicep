// Two action groups, both in the common alert schema: one posts 401/403 alerts to the service's `alerts` function
// (a targeted scan), the other tells people when the service itself is unwell.
param functionAppId string
param functionAppHostName string
param operatorEmail string = ''
param tags object = {}

resource triage 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-triage-alerts'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'triage'
    enabled: true
    azureFunctionReceivers: [
      {
        name: 'alerts-function'
        functionAppResourceId: functionAppId
        functionName: 'alerts'
        httpTriggerUrl: 'https://${functionAppHostName}/api/alerts'
        useCommonAlertSchema: true
      }
    ]
  }
}

resource operators 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-triage-operators'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'triage-ops'
    enabled: true
    emailReceivers: empty(operatorEmail) ? [] : [
      {
        name: 'operators'
        emailAddress: operatorEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

output triageId string = triage.id
output operatorsId string = operators.id
