// Role Based Access Control Administrator on one account, for enforce mode and approvals, constrained by the ABAC
// condition `python -m shared abac-condition` prints (only the grantable data roles, only the allowed principal
// types). Conditions cannot test the scope, so this is assigned on the account itself, never on its resource group.
param accountName string
param principalId string
@description('The generated condition (main.parameters.json holds it; tests/infra keeps it equal to the code).')
param condition string

var roles = loadJsonContent('roles.json')

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: accountName
}

resource roleWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: account
  name: guid(account.id, principalId, roles.roleBasedAccessControlAdministrator)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.roleBasedAccessControlAdministrator)
    principalId: principalId
    principalType: 'ServicePrincipal'
    condition: condition
    conditionVersion: '2.0'
    description: 'aoai-auth-triage: assign only the least-privilege data roles (ABAC condition)'
  }
}
