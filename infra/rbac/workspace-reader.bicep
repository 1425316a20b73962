// Log Analytics Reader on one watched workspace (deployed into the workspace's resource group): the service queries
// AzureDiagnostics / AppDependencies / ApiManagementGatewayLogs there. Returns the workspace id (its customer id
// GUID), which is what the TRIAGE_*_WORKSPACE_IDS settings take.
param workspaceName string
param principalId string

var roles = loadJsonContent('roles.json')

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: workspace
  name: guid(workspace.id, principalId, roles.logAnalyticsReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.logAnalyticsReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'aoai-auth-triage: read the failure logs'
  }
}

output customerId string = workspace.properties.customerId
