// aoai-auth-triage on Azure Functions Flex Consumption, for `azd up` (docs/deploy.md walks through it).
//
// In the deployment's resource group: a user-assigned identity, storage without shared keys, Log Analytics with a
// workspace-based Application Insights (local auth off), Key Vault (RBAC mode) for tracker secrets, an FC1 plan
// with a Python 3.11 Function App, two action groups, the alert rules and the workbook of infra/monitor.
// Per watched scope: Log Analytics Reader on each workspace, Reader and an Event Grid system topic on each
// subscription, a RequestResponse diagnostic setting on each account, and (enableRoleWriter, for enforce mode and
// approvals) Role Based Access Control Administrator on each account with the generated ABAC condition.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment: it seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region of the resource group and its resources: one where Flex Consumption is offered.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Resource group of the service; empty = rg-<environmentName>.')
param resourceGroupName string = ''

// ---- what the service watches ----

@description('Resource ids of the Log Analytics workspaces receiving the accounts\' RequestResponse logs (TRIAGE_WORKSPACE_IDS). The identity gets Log Analytics Reader on each.')
param workspaceResourceIds array = []

@description('Resource ids of the workspaces behind the client apps\' workspace-based Application Insights (TRIAGE_APPINSIGHTS_WORKSPACE_IDS).')
param appInsightsWorkspaceResourceIds array = []

@description('Resource ids of the workspaces receiving API Management gateway logs (TRIAGE_APIM_WORKSPACE_IDS).')
param apimWorkspaceResourceIds array = []

@description('Subscriptions holding the accounts: Reader on each, and an Event Grid system topic for role-assignment events.')
param watchedSubscriptionIds array = [
  subscription().subscriptionId
]

@description('Resource ids of the Cognitive Services / Foundry accounts: a RequestResponse diagnostic setting on each, and the conditioned role writer when enableRoleWriter is set.')
param accountResourceIds array = []

@description('Add a diagnostic setting sending RequestResponse to diagnosticsWorkspaceResourceId on each account.')
param enableAccountDiagnostics bool = true

@description('Workspace the accounts\' diagnostic settings send to; empty = the first of workspaceResourceIds.')
param diagnosticsWorkspaceResourceId string = ''

// ---- remediation policy (TRIAGE_* settings) ----

@allowed([
  'observe'
  'recommend'
  'enforce'
])
param triageMode string = 'recommend'

@description('Give the identity Role Based Access Control Administrator on each account, constrained by rbacCondition: needed by enforce mode and by approvals. Off, grants come back forbidden and are ticketed.')
param enableRoleWriter bool = false

@description('The ABAC condition of the role writer: the output of `python -m shared abac-condition` for the same TRIAGE_ALLOW_USER_GRANTS / TRIAGE_ALLOW_GROUP_GRANTS.')
param rbacCondition string

@description('TRIAGE_ALLOWLIST: the identities the service may grant to, e.g. [{"object_id": "<guid>"}].')
param allowlist array = []
param allowUserGrants bool = false
param allowGroupGrants bool = false
param maxGrantsPerRun int = 5
param maxGrantsPerDay int = 20

@description('TRIAGE_SCAN_SCHEDULE: six-field NCRONTAB, UTC.')
param scanSchedule string = '0 */5 * * * *'

@description('TRIAGE_REVIEW_SCHEDULE: the access reviews on a schedule: off, `<day> HH:MM` (weekly) or `daily HH:MM`, UTC.')
param reviewSchedule string = 'off'

@description('Minutes between two scans of scanSchedule (the "no successful scan" alert waits three of them).')
param scanPeriodMinutes int = 5

@description('TRIAGE_APP_IDENTITIES: Application Insights AppRoleName (or app resource id) -> caller object id.')
param appIdentities object = {}

// ---- tickets ----

@description('TRIAGE_TICKET_SINKS: comma-separated, of log, webhook, github, azuredevops, servicenow, jira, teams.')
param ticketSinks string = 'log'

@description('Non-secret ticket settings by name, e.g. {"TRIAGE_GITHUB_REPO": "contoso/ops"}; names outside the list in main.bicep are ignored.')
param ticketSettings object = {}

@description('Key Vault secret name per secret setting, e.g. {"TRIAGE_GITHUB_TOKEN": "github-token"}: the app reads them as Key Vault references.')
param ticketSecretNames object = {}

@description('Give the app\'s identity Key Vault Crypto User on the deployment\'s vault, to sign GitHub App JWTs with a key held there (TRIAGE_GITHUB_APP_KEY_KIND=key, docs/tickets.md). A PEM kept as a secret needs nothing more: the identity already has Key Vault Secrets User.')
param githubAppKeySigning bool = false

// ---- access and alerts ----

@description('Client id of an Entra app registration: when set, App Service authentication requires an Entra token on approve, revoke and the incident reads. Empty = function keys only.')
param approvalAuthClientId string = ''

@description('E-mail address for the service\'s own health alerts; empty = the action group has no receiver yet.')
param operatorEmail string = ''

@description('"More grants in an hour than this" alert; by default the per-run cap.')
param grantsPerHourThreshold int = maxGrantsPerRun

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var groupName = empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${resourceToken}'
var deadLetterContainerName = 'eventgrid-deadletter'
var diagnosticsWorkspace = empty(diagnosticsWorkspaceResourceId) ? (empty(workspaceResourceIds) ? '' : first(workspaceResourceIds)) : diagnosticsWorkspaceResourceId

// Every TRIAGE_* value the template sets besides the identity and workspace ids (app/function.bicep adds those).
var triageSettings = {
  TRIAGE_MODE: triageMode
  TRIAGE_ALLOWLIST: string(allowlist)
  TRIAGE_ALLOW_USER_GRANTS: allowUserGrants ? 'true' : 'false'
  TRIAGE_ALLOW_GROUP_GRANTS: allowGroupGrants ? 'true' : 'false'
  TRIAGE_MAX_GRANTS_PER_RUN: string(maxGrantsPerRun)
  TRIAGE_MAX_GRANTS_PER_DAY: string(maxGrantsPerDay)
  TRIAGE_SCAN_SCHEDULE: scanSchedule
  TRIAGE_REVIEW_SCHEDULE: reviewSchedule
  TRIAGE_APP_IDENTITIES: string(appIdentities)
  TRIAGE_STATE_BACKEND: 'table'
  TRIAGE_ARM_ENDPOINT: environment().resourceManager
  TRIAGE_ARM_SCOPE: '${environment().resourceManager}.default'
  TRIAGE_TICKET_SINKS: ticketSinks
  TRIAGE_WEBHOOK_URL: ticketSettings.?TRIAGE_WEBHOOK_URL ?? ''
  TRIAGE_GITHUB_API_URL: ticketSettings.?TRIAGE_GITHUB_API_URL ?? ''
  TRIAGE_GITHUB_REPO: ticketSettings.?TRIAGE_GITHUB_REPO ?? ''
  TRIAGE_ADO_ORG_URL: ticketSettings.?TRIAGE_ADO_ORG_URL ?? ''
  TRIAGE_ADO_PROJECT: ticketSettings.?TRIAGE_ADO_PROJECT ?? ''
  TRIAGE_GITHUB_APP_ID: ticketSettings.?TRIAGE_GITHUB_APP_ID ?? ''
  TRIAGE_GITHUB_APP_INSTALLATION_ID: ticketSettings.?TRIAGE_GITHUB_APP_INSTALLATION_ID ?? ''
  TRIAGE_GITHUB_APP_KEY_VAULT_URL: ticketSettings.?TRIAGE_GITHUB_APP_KEY_VAULT_URL ?? ''
  TRIAGE_GITHUB_APP_KEY_NAME: ticketSettings.?TRIAGE_GITHUB_APP_KEY_NAME ?? ''
  TRIAGE_GITHUB_APP_KEY_KIND: ticketSettings.?TRIAGE_GITHUB_APP_KEY_KIND ?? ''
  TRIAGE_GITHUB_ASSIGNEES: ticketSettings.?TRIAGE_GITHUB_ASSIGNEES ?? ''
  TRIAGE_GITHUB_LABELS: ticketSettings.?TRIAGE_GITHUB_LABELS ?? ''
  TRIAGE_ADO_AUTH: ticketSettings.?TRIAGE_ADO_AUTH ?? ''
  TRIAGE_ADO_WORK_ITEM_TYPE: ticketSettings.?TRIAGE_ADO_WORK_ITEM_TYPE ?? ''
  TRIAGE_ADO_AREA_PATH: ticketSettings.?TRIAGE_ADO_AREA_PATH ?? ''
  TRIAGE_ADO_ITERATION_PATH: ticketSettings.?TRIAGE_ADO_ITERATION_PATH ?? ''
  TRIAGE_SERVICENOW_URL: ticketSettings.?TRIAGE_SERVICENOW_URL ?? ''
  TRIAGE_SERVICENOW_USER: ticketSettings.?TRIAGE_SERVICENOW_USER ?? ''
  TRIAGE_JIRA_URL: ticketSettings.?TRIAGE_JIRA_URL ?? ''
  TRIAGE_JIRA_PROJECT: ticketSettings.?TRIAGE_JIRA_PROJECT ?? ''
  TRIAGE_JIRA_USER: ticketSettings.?TRIAGE_JIRA_USER ?? ''
  TRIAGE_EVENTGRID_TOPIC_ENDPOINT: ticketSettings.?TRIAGE_EVENTGRID_TOPIC_ENDPOINT ?? ''
  TRIAGE_SLACK_CHANNEL: ticketSettings.?TRIAGE_SLACK_CHANNEL ?? ''
  TRIAGE_SLACK_API_URL: ticketSettings.?TRIAGE_SLACK_API_URL ?? ''
  // tracker sign-in and routing (ServiceNow OAuth, Jira Data Center, owner routes; docs/tickets.md)
  TRIAGE_SERVICENOW_AUTH: ticketSettings.?TRIAGE_SERVICENOW_AUTH ?? ''
  TRIAGE_SERVICENOW_CLIENT_ID: ticketSettings.?TRIAGE_SERVICENOW_CLIENT_ID ?? ''
  TRIAGE_SERVICENOW_ASSIGNMENT_GROUP: ticketSettings.?TRIAGE_SERVICENOW_ASSIGNMENT_GROUP ?? ''
  TRIAGE_SERVICENOW_CATEGORY: ticketSettings.?TRIAGE_SERVICENOW_CATEGORY ?? ''
  TRIAGE_JIRA_DEPLOYMENT: ticketSettings.?TRIAGE_JIRA_DEPLOYMENT ?? ''
  TRIAGE_JIRA_ISSUE_TYPE: ticketSettings.?TRIAGE_JIRA_ISSUE_TYPE ?? ''
  TRIAGE_JIRA_COMPONENTS: ticketSettings.?TRIAGE_JIRA_COMPONENTS ?? ''
  TRIAGE_JIRA_LABELS: ticketSettings.?TRIAGE_JIRA_LABELS ?? ''
  TRIAGE_ROUTING_TAG: ticketSettings.?TRIAGE_ROUTING_TAG ?? ''
  TRIAGE_TICKET_ROUTES: ticketSettings.?TRIAGE_TICKET_ROUTES ?? ''
}

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: groupName
  location: location
  tags: tags
}

module identity 'core/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    deadLetterContainerName: deadLetterContainerName
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: 'log-${resourceToken}'
    appInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module vault 'core/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
  }
}

module appRoles 'rbac/app-roles.bicep' = {
  name: 'app-roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: vault.outputs.name
    workspaceName: monitoring.outputs.workspaceName
    keyVaultCryptoUser: githubAppKeySigning
  }
}

// ---- per watched scope (resource ids are /subscriptions/{s}/resourceGroups/{g}/providers/{ns}/{type}/{name}) ----

module workspaceReaders 'rbac/workspace-reader.bicep' = [for (id, i) in workspaceResourceIds: {
  name: 'reader-workspace-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    workspaceName: last(split(id, '/'))
    principalId: identity.outputs.principalId
  }
}]

module appInsightsReaders 'rbac/workspace-reader.bicep' = [for (id, i) in appInsightsWorkspaceResourceIds: {
  name: 'reader-appinsights-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    workspaceName: last(split(id, '/'))
    principalId: identity.outputs.principalId
  }
}]

module apimReaders 'rbac/workspace-reader.bicep' = [for (id, i) in apimWorkspaceResourceIds: {
  name: 'reader-apim-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    workspaceName: last(split(id, '/'))
    principalId: identity.outputs.principalId
  }
}]

module watchedSubscriptions 'events/watched-subscription.bicep' = [for (subscriptionId, i) in watchedSubscriptionIds: {
  name: 'watch-subscription-${i}'
  scope: subscription(subscriptionId)
  dependsOn: [
    rg
  ]
  params: {
    principalId: identity.outputs.principalId
    resourceGroupName: groupName
    // The deployment's own group already exists in its own subscription.
    createResourceGroup: subscriptionId != subscription().subscriptionId
    location: location
    tags: tags
    topicName: 'evgt-${resourceToken}-${i}'
  }
}]

module deadLetterWriters 'rbac/storage-blob-writer.bicep' = [for (subscriptionId, i) in watchedSubscriptionIds: {
  name: 'dead-letter-writer-${i}'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    principalId: watchedSubscriptions[i].outputs.topicPrincipalId
  }
}]

module accountDiagnostics 'monitor/account-diagnostics.bicep' = [for (id, i) in accountResourceIds: if(enableAccountDiagnostics && !empty(diagnosticsWorkspace)) {
  name: 'diagnostics-account-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    accountName: last(split(id, '/'))
    workspaceResourceId: diagnosticsWorkspace
  }
}]

module roleWriters 'rbac/account-role-writer.bicep' = [for (id, i) in accountResourceIds: if(enableRoleWriter) {
  name: 'role-writer-account-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    accountName: last(split(id, '/'))
    principalId: identity.outputs.principalId
    condition: rbacCondition
  }
}]

// ---- the Function App ----

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  dependsOn: [
    appRoles
  ]
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultName: vault.outputs.name
    triageSettings: triageSettings
    workspaceIds: [for (id, i) in workspaceResourceIds: workspaceReaders[i].outputs.customerId]
    appInsightsWorkspaceIds: [for (id, i) in appInsightsWorkspaceResourceIds: appInsightsReaders[i].outputs.customerId]
    apimWorkspaceIds: [for (id, i) in apimWorkspaceResourceIds: apimReaders[i].outputs.customerId]
    ticketSecretNames: ticketSecretNames
    authClientId: approvalAuthClientId
  }
}

// ---- alerts and the workbook ----

module actionGroups 'monitor/action-groups.bicep' = {
  name: 'action-groups'
  scope: rg
  params: {
    functionAppId: functionApp.outputs.id
    functionAppHostName: functionApp.outputs.hostName
    operatorEmail: operatorEmail
    tags: tags
  }
}

module alerts 'monitor/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  dependsOn: [
    appRoles
    workspaceReaders
  ]
  params: {
    location: location
    tags: tags
    identityId: identity.outputs.id
    functionAppName: functionAppName
    serviceWorkspaceId: monitoring.outputs.workspaceId
    watchedWorkspaceIds: workspaceResourceIds
    operatorsActionGroupId: actionGroups.outputs.operatorsId
    triageActionGroupId: actionGroups.outputs.triageId
    scanPeriodMinutes: scanPeriodMinutes
    grantsPerHourThreshold: grantsPerHourThreshold
  }
}

module workbook 'monitor/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    functionAppName: functionAppName
    serviceWorkspaceId: monitoring.outputs.workspaceId
    watchedWorkspaceIds: workspaceResourceIds
  }
}

// ---- outputs: azd stores them in the environment; the postdeploy hook reads the EVENT_GRID_* ones ----

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_RESOURCE_ID string = functionApp.outputs.id
output AZURE_KEY_VAULT_NAME string = vault.outputs.name
output AZURE_KEY_VAULT_URI string = vault.outputs.uri
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output EVENT_GRID_SYSTEM_TOPIC_IDS array = [for (subscriptionId, i) in watchedSubscriptionIds: watchedSubscriptions[i].outputs.topicId]
output EVENT_GRID_DEAD_LETTER_STORAGE_ID string = storage.outputs.id
output EVENT_GRID_DEAD_LETTER_CONTAINER string = deadLetterContainerName
