// The Function App on a Flex Consumption (FC1) plan: Python 3.11, the user-assigned identity for everything, its
// storage connection by identity (AzureWebJobsStorage__*), the service's TRIAGE_* settings, tracker secrets as Key
// Vault references, and optionally App Service authentication in front of the approve and revoke routes.
param name string
param planName string
param location string
param tags object = {}

param identityId string
param identityClientId string
param storageBlobEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param appInsightsConnectionString string
param keyVaultName string

@description('TRIAGE_* settings built by main.bicep (keys are checked against shared/settings.py by tests/infra).')
param triageSettings object
@description('Log Analytics workspace ids (GUIDs) of each source, as TRIAGE_WORKSPACE_IDS and friends want them.')
param workspaceIds array = []
param appInsightsWorkspaceIds array = []
param apimWorkspaceIds array = []
@description('Key Vault secret name per secret TRIAGE_* setting, e.g. {"TRIAGE_GITHUB_TOKEN": "github-token"}.')
param ticketSecretNames object = {}

@description('Client id of an Entra app registration; empty = no App Service authentication.')
param authClientId string = ''
param maximumInstanceCount int = 40
param instanceMemoryMB int = 2048

var keyVaultReference = '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName='
// Routes machines call with a function or system key (health probes, action groups, Event Grid, pasted errors):
// these stay reachable without an Entra token. Every other route, approve and revoke among them, needs one.
var machineRoutes = [
  '/api/health'
  '/api/alerts'
  '/api/diagnose'
  '/runtime/webhooks/eventgrid'
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: union(triageSettings, {
    // Identity-based host storage (Flex Consumption has no connection string with shared keys off).
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
    AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
    // Application Insights with local auth off: ingestion authenticates as the identity.
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // OpenTelemetry (host.json telemetryMode): the Python worker sets up the Azure Monitor distro, attaches each
    // invocation's trace and exports the service's own logger; the host then does not export those logs again.
    PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
    PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME: 'triage'
    TRIAGE_MANAGED_IDENTITY_CLIENT_ID: identityClientId
    TRIAGE_WORKSPACE_IDS: join(workspaceIds, ',')
    TRIAGE_APPINSIGHTS_WORKSPACE_IDS: join(appInsightsWorkspaceIds, ',')
    TRIAGE_APIM_WORKSPACE_IDS: join(apimWorkspaceIds, ',')
    // Secrets are never values here: a Key Vault reference when a secret name is given, else empty (the default).
    TRIAGE_WEBHOOK_SECRET: contains(ticketSecretNames, 'TRIAGE_WEBHOOK_SECRET') ? '${keyVaultReference}${ticketSecretNames.TRIAGE_WEBHOOK_SECRET})' : ''
    TRIAGE_GITHUB_TOKEN: contains(ticketSecretNames, 'TRIAGE_GITHUB_TOKEN') ? '${keyVaultReference}${ticketSecretNames.TRIAGE_GITHUB_TOKEN})' : ''
    TRIAGE_ADO_PAT: contains(ticketSecretNames, 'TRIAGE_ADO_PAT') ? '${keyVaultReference}${ticketSecretNames.TRIAGE_ADO_PAT})' : ''
    TRIAGE_SERVICENOW_PASSWORD: contains(ticketSecretNames, 'TRIAGE_SERVICENOW_PASSWORD') ? '${keyVaultReference}${ticketSecretNames.TRIAGE_SERVICENOW_PASSWORD})' : ''
    TRIAGE_JIRA_TOKEN: contains(ticketSecretNames, 'TRIAGE_JIRA_TOKEN') ? '${keyVaultReference}${ticketSecretNames.TRIAGE_JIRA_TOKEN})' : ''
    TRIAGE_EVENTGRID_TOPIC_KEY: contains(ticketSecretNames, 'TRIAGE_EVENTGRID_TOPIC_KEY') ? '${keyVaultReference}${ticketSecretNames.TRIAGE_EVENTGRID_TOPIC_KEY})' : ''
    TRIAGE_SLACK_BOT_TOKEN: contains(ticketSecretNames, 'TRIAGE_SLACK_BOT_TOKEN') ? '${keyVaultReference}${ticketSecretNames.TRIAGE_SLACK_BOT_TOKEN})' : ''
    TRIAGE_SLACK_WEBHOOK_URL: contains(ticketSecretNames, 'TRIAGE_SLACK_WEBHOOK_URL') ? '${keyVaultReference}${ticketSecretNames.TRIAGE_SLACK_WEBHOOK_URL})' : ''
    TRIAGE_TEAMS_WEBHOOK_URL: contains(ticketSecretNames, 'TRIAGE_TEAMS_WEBHOOK_URL') ? '${keyVaultReference}${ticketSecretNames.TRIAGE_TEAMS_WEBHOOK_URL})' : ''
    TRIAGE_SERVICENOW_CLIENT_SECRET: contains(ticketSecretNames, 'TRIAGE_SERVICENOW_CLIENT_SECRET') ? '${keyVaultReference}${ticketSecretNames.TRIAGE_SERVICENOW_CLIENT_SECRET})' : ''
  })
}

// App Service authentication: bearer tokens for the app registration are validated in front of the app, and the
// signed-in engineer reaches approve/revoke as X-MS-CLIENT-PRINCIPAL-NAME (docs/http-api.md, "Who approves").
resource authentication 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(authClientId)) {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'Return401'
      excludedPaths: machineRoutes
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${authClientId}'
            authClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output id string = site.id
output name string = site.name
output hostName string = site.properties.defaultHostName
